"""faultlab's Streamlit app: the router. Run it with ``python -m streamlit run ui/app.py``.

Pages live in ``ui/views/``, one script each: the what-if Explorer, Compare (variants with
confidence intervals), Sweep (heatmaps, the metastability map) and Training (lessons: predict,
run, reveal, discuss). Each defines ``page()`` and calls it when Streamlit runs it as the page
(``__name__ == "__main__"``), so that tests can also open a page by its file
(``AppTest.switch_page("views/compare.py")``).
"""

import streamlit as st

st.set_page_config(page_title="faultlab", page_icon=":material/bug_report:", layout="wide")

navigation = st.navigation(
    [
        st.Page(
            "views/explorer.py",
            title="Explorer",
            icon=":material/science:",
            url_path="explorer",
            default=True,
        ),
        st.Page("views/compare.py", title="Compare", icon=":material/compare:", url_path="compare"),
        st.Page("views/sweep.py", title="Sweep", icon=":material/grid_on:", url_path="sweep"),
        st.Page(
            "views/training.py", title="Training", icon=":material/school:", url_path="training"
        ),
    ]
)
navigation.run()
