"""Plain test data and fakes that tests build themselves, imported by package path.

What lives here, and what does not:

- Fixtures — anything with a lifecycle that a test simply receives (a fresh in-process
  ``LabsServer``, a client on it, the fake chat-completions server on 127.0.0.1, ...) — are in
  ``conftest.py`` files: ``tests/conftest.py`` for what several areas use, an area's own
  ``conftest.py`` (``tests/client/``, ``tests/server/``, ...) for the rest.
- This package holds what a test *constructs* with arguments of its own choosing, where a
  fixture would only hide the call: constants (scenario slugs, canned responses), scripted
  fake transports and simulators, small builders of requests and clients. They are ordinary
  modules, imported as ``from tests.kit.scripted_http import Script`` — ``tests`` is a package
  (every test folder has an ``__init__.py``), so no ``sys.path`` manipulation is needed.

Modules:

- :mod:`tests.kit.scenarios` — slugs and actions of the bundled scenarios.
- :mod:`tests.kit.scripted_http` — a scripted ``httpx.MockTransport`` handler and clients on it.
- :mod:`tests.kit.fake_simulator` — a predictable simulator behind a real ``LabsServer``.
- :mod:`tests.kit.clock` — a settable clock.
- :mod:`tests.kit.wire` — raw ``httpx`` requests against a ``LabsServer`` (protocol tests).
- :mod:`tests.kit.transports` — in-process transports that count, fail or hold requests.
- :mod:`tests.kit.chat_server` — the fake OpenAI chat-completions server (its fixture is
  ``fake_chat``).
- :mod:`tests.kit.simulation` — drive a policy through the simulator; careless test agents.
- :mod:`tests.kit.waiting` — wait for a condition (with a deadline) instead of sleeping.
"""
