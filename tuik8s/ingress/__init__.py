"""The Ingress controller, built on mitmproxy used as a library.

`table` folds Ingresses, Services, Endpoints and TLS Secrets into an immutable
routing table; `controller` keeps it current from watches and writes Ingress status;
`router` and `tls` are the mitmproxy addons that route requests and terminate TLS;
`worker` is one proxy process; `runner` is the `tuik8s ingress` command that ties
them together; `dispatch` makes mitmproxy's hook dispatch cheaper where it can.
"""
