// Package greeter is the example greeter service: SayHello greets a name, or a
// user it looks up in the user service through discovery, and StreamHellos
// streams greetings. It shows a two-hop call (gateway or client → greeter →
// user) on kit clients and servers.
package greeter
