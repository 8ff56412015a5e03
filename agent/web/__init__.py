"""The fleet's web view: one page, a JSON state endpoint and Prometheus metrics, served by the standard library.

state.py gathers what the fleet publishes (one MQTT subscriber, bounded ring buffers), frame_overlay.py draws
the prediction on the latest frame, metrics.py exports the state as Prometheus metrics, auth.py checks HTTP
basic credentials, server.py serves it all; static/ holds the page (no CDN, no build step).
"""
