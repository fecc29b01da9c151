"""``lngate loadtest``: drive a running gateway at a fixed request rate and check its objectives.

Open loop (:mod:`~lngate.loadtest.schedule`): request *i* leaves at ``start + i / rate`` whether
or not the earlier ones have answered, so what is measured is the latency under that rate, not
the length of a queue. Scenarios (:mod:`~lngate.loadtest.scenarios`): ``health``,
``create-invoice``, ``order-and-pay`` and ``webhook``. Safety (:mod:`~lngate.loadtest.target`):
loopback targets only unless allowed, and a gateway that is not in demo mode is detected before
anything is created. Results (:mod:`~lngate.loadtest.results`): live p50/p99 and errors, a final
table, a JSON report, the verdict against the service-level objectives, and the run's summary
recorded on the gateway (``POST /api/admin/loadtests``). The run itself:
:mod:`~lngate.loadtest.runner`. It talks to the gateway over HTTP only.
"""
