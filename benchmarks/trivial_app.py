"""The yardstick for benchmarks/bench_pages.py: the smallest Streamlit page with one number box and one chart that
depends on it (a heatmap of the Token Lab's default size, 8 × 28 cells), drawn as the app draws its charts."""
import plotly.graph_objects as go
import streamlit as st

st.set_page_config(page_title="trivial", layout="wide")
c = st.number_input("c", value=3.0, step=0.5)
z = [[c * (1 + i) * (1 + t) / 100 for t in range(28)] for i in range(8)]
st.plotly_chart(go.Figure(go.Heatmap(z=z), layout=dict(height=300, title="trivial")), theme=None,
                config={"displayModeBar": False})
