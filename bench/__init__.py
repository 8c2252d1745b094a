from rsnet_edge._startup import guard_imports as _guard  # Ctrl-C while importing: one line, exit 130

_guard()
