"""The math: settings, advantages, aggregation, the objectives and the explain path (no I/O, no Streamlit)."""
