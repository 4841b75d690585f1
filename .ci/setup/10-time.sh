# GNU time, for the peak-RSS checks of tests/hostile_run.rs.
if [ ! -x /usr/bin/time ]; then
  ci_apt_install time
fi
