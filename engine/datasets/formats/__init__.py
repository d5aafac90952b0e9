"""Dataset formats, pure and ORM-free: SA-V JSON (``sav``), DAVIS / YouTube-VOS PNG folders
(``davis``) and COCO JSON with RLE masks and track ids (``coco``).

Writers stream (frame by frame or masklet by masklet) so an export never holds a dataset in
memory; readers return plain dataclasses that the ORM glue maps onto models.
"""
