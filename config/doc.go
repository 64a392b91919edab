// Package config holds pvhub's configuration: a typed Config, its defaults, the
// layers it is loaded from, its validation, and the differences that a reload
// (SIGHUP) applies.
//
// # Layers
//
// Load builds a Config from these layers; each one overrides the ones before it,
// key by key:
//
//  1. the defaults (Default);
//  2. the standard EPICS variables (EPICS_CA_*, EPICS_CAS_*), where set;
//  3. the YAML file given to `pvhub serve --config FILE`;
//  4. environment variables PVHUB_<KEY>, where the key is upper case and "__"
//     separates its parts: PVHUB_RELAY__PREFIX sets relay.prefix,
//     PVHUB_TRANSPORTS__MQTT__LISTEN sets transports.mqtt.listen;
//  5. command-line flags, given to Load keyed by configuration key.
//
// So defaults < EPICS variables < file < PVHUB_ variables < flags. A key that a
// layer leaves out, or sets to null in the file, keeps the value of the layers
// below. Values from the environment and from flags are text: "true"/"false"
// (also yes/no, on/off, 1/0), integers, durations such as "30s", and lists
// separated by spaces or commas ("10.0.0.1 10.0.0.2:5070"). An empty value sets
// an empty string or an empty list.
//
// # EPICS variables
//
//	EPICS_CAS_SERVER_PORT, else EPICS_CA_SERVER_PORT   ca.server_port
//	EPICS_CA_SERVER_PORT                               ca.search_port
//	EPICS_CA_ADDR_LIST                                 ca.addr_list
//	EPICS_CA_AUTO_ADDR_LIST                            ca.auto_addr_list
//	EPICS_CA_NAME_SERVERS                              ca.name_servers
//	EPICS_CAS_INTF_ADDR_LIST                           ca.intf_addr_list
//	EPICS_CAS_IGNORE_ADDR_LIST                         ca.ignore_addr_list
//	EPICS_CAS_BEACON_ADDR_LIST                         ca.beacon_addr_list
//	EPICS_CAS_AUTO_BEACON_ADDR_LIST                    ca.auto_beacon_addr_list
//	EPICS_CAS_BEACON_PORT                              ca.beacon_port
//	EPICS_CAS_BEACON_PERIOD, else EPICS_CA_BEACON_PERIOD  ca.beacon_period
//	EPICS_CA_REPEATER_PORT                             ca.repeater_port
//	EPICS_CA_CONN_TMO                                  ca.conn_timeout
//	EPICS_CA_MAX_SEARCH_PERIOD                         ca.max_search_period
//	EPICS_CA_MAX_ARRAY_BYTES                           ca.max_array_bytes
//
// They are read as libca reads them: blank counts as unset, YES/NO flags are
// false when the value contains "no" (any case), periods are in seconds, and
// values below libca's minimums are raised to them.
//
// # Derived defaults
//
// Two defaults follow other keys when no layer sets them: write.allow is
// [<relay.prefix>*] (the relay's PVs, whatever the effective prefix), and
// ca.beacon_port is ca.repeater_port.
//
// # Loopback by default
//
// The defaults keep every socket and every datagram on 127.0.0.1: CA searches,
// beacons, the CA server's interfaces, and the transports' listeners.
// pvhub.example.yaml shows the lines that open pvhub to a beamline network.
//
// # Errors
//
// Unknown keys and bad values stop Load, which reports every problem at once,
// one *KeyError per line: the key's path, the reason, and where the value came
// from, for example
//
//	relay.max_pvs: must be a positive integer, got "ten" (from PVHUB_RELAY__MAX_PVS)
//	relay.prefx: unknown key (did you mean relay.prefix?) (from /etc/pvhub.yaml)
//
// # Reference
//
// Reference renders docs/configuration.md: every key with its type, default,
// environment variables and reload behaviour, taken from the code, and its
// description, taken from the comment above the key in pvhub.example.yaml. A
// key without a comment there makes Reference fail. `make docs` rewrites the
// file, and a test fails while it is stale.
//
// # Reload
//
// On SIGHUP the daemon loads the configuration again and compares it with Diff.
// Only write.allow, write.deny and transports.<name>.enabled apply live; any
// other change takes effect at the next restart (Change.Reloadable says which).
package config
