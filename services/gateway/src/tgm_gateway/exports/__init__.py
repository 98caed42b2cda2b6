"""Downloads of exports too large for one reply (`tgm_runtime.exports`), from the `tgm_exports` object
store: `handlers.py` is the route, there is no store or use case of the gateway's own."""
