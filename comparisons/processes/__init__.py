"""Child processes: owned scratch folders, isolated children with watchdogs, the loopback cluster of workers."""
