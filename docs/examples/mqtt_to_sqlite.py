"""Store the face records of a ferfast kiosk fleet in SQLite; print emotions per kiosk per hour.

    python mqtt_to_sqlite.py mqtt://broker.local/site faces.db   # collect; Ctrl-C prints the report
    python mqtt_to_sqlite.py faces.db                             # the report only

Subscribes to ``PREFIX/+/faces`` (QoS 1, the topics of ``ferfast-stream --mqtt``, docs/stream.md
"MQTT") under a fixed client id with a persistent session, so the broker keeps what arrives while
this subscriber is down. One row per face; a record that QoS 1 delivers twice is stored once.
Needs paho-mqtt (``pip install "ferfast[mqtt]"``). See docs/deploy.md.
"""

import itertools
import json
import os
import sqlite3
import sys
import urllib.parse
from urllib.parse import unquote

db = sqlite3.connect(sys.argv[-1])
db.execute("PRAGMA journal_mode=WAL")  # readers (the report, a dashboard) never block the writer
db.execute("CREATE TABLE IF NOT EXISTS faces (kiosk TEXT, time REAL, frame INT, face INT, "
           "id INT, emotion TEXT, confidence REAL, UNIQUE (kiosk, time, frame, face))")  # fmt: skip


def store(client, userdata, msg) -> None:
    kiosk = msg.topic.split("/")[-2]  # PREFIX/<kiosk>/faces
    r = json.loads(msg.payload)
    with db:  # one transaction per record
        db.executemany("INSERT OR IGNORE INTO faces VALUES (?, ?, ?, ?, ?, ?, ?)",
                       [(kiosk, r["time"], r["frame"], i, f.get("id"), f["emotion"],
                         f["confidence"]) for i, f in enumerate(r["faces"])])  # fmt: skip


if len(sys.argv) == 3:
    import paho.mqtt.client as mqtt

    url = urllib.parse.urlsplit(sys.argv[1])
    topic = f"{url.path.strip('/') or 'ferfast'}/+/faces"
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, "ferfast-sqlite", clean_session=False)
    if url.username:  # as for ferfast-stream: a password not in the URL from the environment
        password = url.password or os.environ.get("FERFAST_MQTT_PASSWORD", "")
        client.username_pw_set(unquote(url.username), unquote(password))
    if url.scheme == "mqtts":
        client.tls_set()

    def subscribe(client, userdata, flags, reason, properties) -> None:
        if reason.is_failure:  # a wrong password, a refused client id: say so and stop
            sys.exit(f"the broker refused the connection: {reason}")
        client.subscribe(topic, qos=1)

    client.on_connect = subscribe
    client.on_subscribe = lambda *_: print(f"subscribed to {topic}", file=sys.stderr, flush=True)
    client.on_message = store
    client.connect(url.hostname, url.port or (8883 if url.scheme == "mqtts" else 1883))
    try:
        client.loop_forever()
    except KeyboardInterrupt:
        client.disconnect()

rows = db.execute("SELECT kiosk, strftime('%Y-%m-%d %H:00', time, 'unixepoch'), emotion, "
                  "COUNT(*) FROM faces GROUP BY 1, 2, 3 ORDER BY 1, 2, 4 DESC, 3")  # fmt: skip
for (kiosk, hour), group in itertools.groupby(rows, key=lambda row: row[:2]):
    print(f"{kiosk}  {hour} UTC  " + "  ".join(f"{e} {n}" for *_, e, n in group))
