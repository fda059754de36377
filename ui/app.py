"""faultlab's Streamlit app: the router. Run it with ``python -m streamlit run ui/app.py``.

Pages live in ``ui/views/``, one module per page, each exposing ``page()``.
"""

import streamlit as st

from ui.views import explorer

st.set_page_config(page_title="faultlab", page_icon=":material/bug_report:", layout="wide")

navigation = st.navigation(
    [
        st.Page(
            explorer.page,
            title="Explorer",
            icon=":material/science:",
            url_path="explorer",
            default=True,
        ),
    ]
)
navigation.run()
