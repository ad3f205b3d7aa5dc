module github.com/shoal-go/shoal

go 1.26.0

require (
	github.com/cespare/xxhash/v2 v2.3.0
	go.uber.org/goleak v1.3.0
	golang.org/x/time v0.16.0
)

require github.com/stretchr/testify v1.12.1 // indirect
