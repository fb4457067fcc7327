"""The three phases of one pass (survey, deliver, settle) and its read-only looks (snapshot,
peek).
"""
