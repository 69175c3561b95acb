"""PartnerGuard's test bench: the stand-ins the demo, the tests and the benchmarks run against.

- `simulator/`: Entra ID and Microsoft Graph on loopback HTTPS (its own trustme CA);
- `acs_fake.py`: Azure Communication Services Email on loopback HTTPS, HMAC-checked;
- `loopback_https.py`: the HTTPS scaffolding both servers share;
- `azurite.py`: starts and stops the Azurite storage emulator;
- `demo.py`: `python -m partnerguard demo`, the whole pipeline on these parts;
- `bench/`: `make bench`, scans measured against the bounds Graph's limits set.

Nothing deployed imports this package (`.funcignore` leaves it out, and
`tests/test_deployed_imports.py` fails if the app loads it); it imports the product, never the
other way round. Its dependencies (trustme, PyJWT, cryptography) are in requirements-dev.txt.
"""
