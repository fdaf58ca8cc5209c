"""Streamlit helpers (the only part of gspo_viz that imports streamlit): session state, the link, shared widgets."""
