"""One door to the outside per kind of effect.

``cmd`` runs subprocesses, ``container`` talks to the container engine (a typed
``Engine`` protocol, one ``Container`` that always cleans up, one build-stream
reader), ``http`` makes the one kind of HTTP client (CA bundle, proxy, NO_PROXY).
Everything above goes through these, so each effect behaves the same everywhere and
unit tests replace it in one place.
"""
