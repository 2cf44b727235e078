"""A stream run with only the MQTT output, for tests that need a process to kill.

``python tests/mqtt_runner.py --frames N --interval S [--mqtt ... options]`` runs ferfast's
stream loop (:class:`ferfast.stream.pipeline.StreamLoop`) over N numbered frames of a fake camera,
one every S seconds, with a fake engine (tests/stream_support.py), and sends its records through
the sink that :func:`ferfast.sinks.mqtt.mqtt_sink_from_args` builds from the options. It prints
``connected`` once the sink is up.
"""

from __future__ import annotations

import argparse
import sys

from stream_support import FakeEngine, NumberedCapture

from ferfast.sinks.mqtt import add_mqtt_arguments, mqtt_sink_from_args
from ferfast.stream.pipeline import Lane, StreamLoop
from ferfast.stream.sources import FrameSource, parse_source
from ferfast.stream.tracking import IouTracker


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--interval", type=float, default=0.0)
    add_mqtt_arguments(parser)
    args = parser.parse_args()
    sink = mqtt_sink_from_args(args, ["cam.mp4"])
    assert sink is not None
    print("connected", flush=True)
    capture = NumberedCapture(args.frames, delay=args.interval)
    source = FrameSource(parse_source("cam.mp4"), opener=lambda spec, **kw: capture).start()
    engine = FakeEngine()
    loop = StreamLoop(engine, [Lane(source, IouTracker(engine.emotions))], sinks=[sink])
    try:
        result = loop.run()
    finally:
        source.stop()
    sink.publish_summary(result.summary.as_dict() | {"reason": result.reason})
    sink.close()
    print(sink.summary_line(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
