//! The scheduler service (`certctl.scheduler.v1`): jobs, leasing, the renewal loop.
