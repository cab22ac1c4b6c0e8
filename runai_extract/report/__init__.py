"""The period report: one self-contained HTML page to look at or print (docs/report.md).

Data from warehouse.analytics (pandas), charts from altair as inline SVG, completeness from the
coverage view and ledger/verify. May import ledger/, transforms, warehouse and core; never the
streams, compliance/ or cli/.
"""
