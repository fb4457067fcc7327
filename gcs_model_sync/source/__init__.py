"""The bucket side: listing a prefix, reading objects (whole, ranged, resumed), credentials and the
request budget.
"""
