"""Models: the OS-8 timm backbone, shared layers, the TMA read and TMANet.

Importing ``bench.models.tmanet`` registers ``tmanet`` in ``bench.models.registry``; the baselines live in
``baselines``.
"""
