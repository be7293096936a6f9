"""Real services for the tests, started on loopback and stopped by PID: an ``xrootd``
server (:mod:`services.xrootd`) and Dask processes (:mod:`services.dask`)."""
