module github.com/hornbeam-go/hornbeam

go 1.26.8

require (
	github.com/BurntSushi/toml v1.6.0 // indirect
	github.com/pires/go-proxyproto v0.8.1 // indirect
	github.com/spf13/pflag v1.1.0 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/text v0.43.0 // indirect
)
