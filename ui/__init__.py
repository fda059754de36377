"""The Streamlit what-if explorer and the Plotly figure builders."""
