"""ferfast-stream: emotion recognition on camera, file and network streams.

Modules: ``sources`` (open / reconnect sources, capture thread), ``tracking`` (IoU tracker, EMA
smoothing), ``annotate`` (boxes, labels, bars), ``kiosk`` (fullscreen view, window),
``recorder`` (annotated video), ``crops`` (optional face crops), ``stats`` (latency and summary),
``pipeline`` (the loop; frame records go to :mod:`ferfast.sinks`) and ``cli``
(``ferfast-stream``).
"""
