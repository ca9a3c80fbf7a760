// Command go_client sends the records of a JSON file ([[tag, record], ...]) to a Forward
// server with fluent-logger-golang and RequestAck, then exits 0 once every record is
// acknowledged; any error, or acks still missing at the deadline, exits 1.
//
//	go_client [-async] [-subsecond] -port P -records FILE
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/fluent/fluent-logger-golang/fluent"
)

const deadline = 60 * time.Second

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "go client: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	async := flag.Bool("async", false, "send from fluent-logger-golang's background goroutine")
	subsecond := flag.Bool("subsecond", false, "send EventTime (SubSecondPrecision) instead of whole seconds")
	port := flag.Int("port", 24224, "the Forward server's port on 127.0.0.1")
	path := flag.String("records", "", "JSON file of [tag, record] pairs")
	flag.Parse()

	data, err := os.ReadFile(*path)
	if err != nil {
		fail("%v", err)
	}
	var records [][2]json.RawMessage
	if err := json.Unmarshal(data, &records); err != nil {
		fail("reading %s: %v", *path, err)
	}

	timer := time.AfterFunc(deadline, func() { fail("not every record acknowledged within %s", deadline) })
	var failures atomic.Int64
	logger, err := fluent.New(fluent.Config{
		FluentHost:         "127.0.0.1",
		FluentPort:         *port,
		RequestAck:         true,
		Async:              *async,
		SubSecondPrecision: *subsecond,
		Timeout:            10 * time.Second,
		ReadTimeout:        20 * time.Second,
		WriteTimeout:       20 * time.Second,
		MaxRetry:           1,
		AsyncResultCallback: func(_ []byte, err error) {
			if err != nil {
				failures.Add(1)
				fmt.Fprintf(os.Stderr, "go client: async send failed: %v\n", err)
			}
		},
	})
	if err != nil {
		fail("connecting: %v", err)
	}
	for _, pair := range records {
		var tag string
		var record map[string]any
		if err := json.Unmarshal(pair[0], &tag); err != nil {
			fail("tag: %v", err)
		}
		if err := json.Unmarshal(pair[1], &record); err != nil {
			fail("record: %v", err)
		}
		if err := logger.Post(tag, record); err != nil {
			fail("post: %v", err)
		}
	}
	if err := logger.Close(); err != nil {
		fail("close: %v", err)
	}
	timer.Stop()
	if n := failures.Load(); n > 0 {
		fail("%d records were not acknowledged", n)
	}
	fmt.Printf("go client: %d records acknowledged (async=%v subsecond=%v)\n", len(records), *async, *subsecond)
}
