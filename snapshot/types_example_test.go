package snapshot_test

import (
	"fmt"

	"github.com/shoal-go/shoal/snapshot"
)

// A Change says what became of one room since the follower's last sync: its
// newest value, or that it was deleted.
func ExampleChange() {
	var topics snapshot.Store[string, string] // room → topic
	topics.Set("lobby", "welcome")
	topics.Set("random", "anything goes")
	mark := topics.Version()

	topics.Set("lobby", "release day")
	topics.Set("lobby", "release done") // only the latest value is reported
	topics.Delete("random")

	changes, _, err := topics.Since(mark)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range changes {
		if c.Deleted {
			fmt.Printf("v%d %s closed\n", c.Version, c.Key)
			continue
		}
		fmt.Printf("v%d %s topic %q\n", c.Version, c.Key, c.Value)
	}
	// Output:
	// v4 lobby topic "release done"
	// v5 random closed
}
