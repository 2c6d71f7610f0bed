"""Imported by the validation workers' fork server in `test_import_workers`: a fork server that takes
seconds to come up, as it does on a loaded host. Not imported by the tests themselves."""

import time

time.sleep(2.0)
