"""The terminal UI: a k9s-class keyboard front end over any Kubernetes API.

It talks to the cluster only through `tuik8s.client` (informers for live lists, the
`ApiClient` for actions), so it works against any cluster a kubeconfig names. The list
views are virtual: a `ScrollView` that renders only the visible lines from a slim model
of string tuples, which is what keeps 10,000 rows responsive (see TEXTUAL.md).

Entry point: `tuik8s.tui.app.run_tui`, or `python -m tuik8s.tui`.
"""
