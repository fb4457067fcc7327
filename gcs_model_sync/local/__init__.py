"""The destination side: its folders, what is published there, the state file, durable writes and
the lock.
"""
