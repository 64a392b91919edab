// Package catest holds loopback test helpers and real-peer drivers for
// pvhub's Channel Access (CA) tests.
//
// The real peers are Debian's EPICS CA client library (libca) and pyepics,
// which wraps the same library. Two small programs drive them and print one
// JSON object per line: cadriver (C, built on demand by [Libca] with gcc) and
// pydriver.py (run by [Pyepics] with /usr/bin/python3). Their output lines
// arrive as [Line] values, either all at once from Run or as a stream from
// Start for long-running monitors.
//
// Every client process gets its environment from an [Env], which points it at
// a loopback server (EPICS_CA_ADDR_LIST=127.0.0.1:port,
// EPICS_CA_AUTO_ADDR_LIST=NO) and at a private stub repeater, so no test ever
// broadcasts or touches the host's CA repeater port 5065. Every process is
// started in its own process group and killed with its whole group at test
// cleanup.
//
// When a real peer is missing, [Require] skips the test, or fails it when the
// environment variable CI is "true".
//
// A typical test of a server on a loopback port:
//
//	tl, ul := catest.ListenLoopback(t)            // or port := catest.FreePort(t)
//	// ... start the server on tl and ul ...
//	env := catest.NewEnv(t, tl.Addr().(*net.TCPAddr).Port)
//	c := catest.Libca(t)                          // skips without gcc/libca
//	lines, err := c.Run(ctx, env, "get", "-d", "DBR_CTRL_DOUBLE", "pv:a")
//	v := catest.Find(lines, "value", "pv:a")[0]   // v.Float("upper_disp_limit"), v.Floats()
//	mon, err := c.Start(ctx, env, "monitor", "-n", "3", "pv:a")
//	l, err := mon.WaitFor(5*time.Second, func(l catest.Line) bool { return l.Event() == "value" })
//
// [SoftIoc] starts a real IOC, softIoc from the EPICS base that the
// environment variable EPICS_BASE names, on a loopback port with its beacons
// going to a stub repeater; the test skips when EPICS_BASE is unset. The IOC
// can be stopped and restarted on the same port:
//
//	ioc := catest.SoftIoc(t, `record(ao, "x") { field(PREC, "2") }`)
//	// ... clients search 127.0.0.1:ioc.Port(), with ioc.BeaconPort() as repeater port,
//	// or run a driver with ioc.Env() ...
//	ioc.Stop()
//	if err := ioc.Restart(); err != nil { t.Fatal(err) }
//
// The optional TestIntegrationDriversAgainstSoftIoc checks the drivers
// themselves against such an IOC.
package catest
