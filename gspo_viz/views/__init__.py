"""Views built from results: figures, formula steps, sentences, tables and reports (no Streamlit)."""
