"""Settings for ``bench/ws_bench.py``: Cutline's own, with the channel layer under test.

``CUTLINE_BENCH_LAYER=core`` runs Daphne and the workers on ``RedisChannelLayer``;
anything else on ``RedisPubSubChannelLayer``, the layer Cutline ships with.
"""

from __future__ import annotations

import os

from config.settings import *  # noqa: F403
from config.settings import REDIS_URL

LAYERS = {
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
    "core": "channels_redis.core.RedisChannelLayer",
}

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": LAYERS.get(os.environ.get("CUTLINE_BENCH_LAYER", "pubsub"), LAYERS["pubsub"]),
        "CONFIG": {"hosts": [REDIS_URL]},
    }
}
