#!/usr/bin/env sh
# The dashboard's browser tests need Debian's chromium (never a downloaded browser). `make test`
# (and so `make check`, the README's test command CI runs) installs it when it can: as root with
# apt-get. Elsewhere, or when the install fails, the browser tests are skipped with a reason.
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  # APT::Sandbox::User=root: apt's _apt user cannot write temp files when /tmp is mode 700.
  (apt-get -o APT::Sandbox::User=root update -qq \
     && apt-get -o APT::Sandbox::User=root install -y -qq chromium >/dev/null) \
    || echo "chromium could not be installed; browser tests will be skipped with a reason"
fi
exit 0
