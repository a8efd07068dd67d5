"""`status`: both clusters at a glance, read live through each stack's outputs.

Three parts, one job each, imported from where they live: `read` (kubectl's two `get`s per cluster, and
the linkerd CLI's view of the gateway), `checks` (the objects against the stack's outputs, into a
`Report`) and `views` (text, a rich table, SVG; the JSON is `Report.data()`).
"""
