"""Settings for `bench/run --floor`: the app, plus the floor views of
bench/floor_urls.py. Never used outside the benchmark."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.floor_urls"
