"""The LIVE-readiness report: one self-contained HTML file built from explore's run records
(`model.run_record`). `summary` decides what it says (the verdict, the tables, the coverage
heatmap), `charts` draws the history, `html` puts them in the page.
"""
