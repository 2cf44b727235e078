"""ferfast-stream: emotion recognition on camera, file and network streams.

Modules: ``sources`` (open / reconnect sources, capture thread), ``tracking`` (IoU tracker, EMA
smoothing), ``events`` (JSON Lines), ``annotate`` (boxes, labels, bars), ``kiosk`` (fullscreen view,
window), ``recorder`` (annotated video), ``crops`` (optional face crops), ``stats`` (latency and
summary), ``pipeline`` (the loop) and ``cli`` (``ferfast-stream``).
"""
