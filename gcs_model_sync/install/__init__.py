"""Carrying a plan out: fetch, verify, stage, publish, model files, make room, prune, ask the
server.
"""
