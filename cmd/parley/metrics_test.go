package main_test

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scrape reads a Prometheus text page into series → value, a series
// named as printed: name{label="value",...}.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %s", url, resp.Status)
	}
	out := make(map[string]float64)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("scrape %s: line %q: %v", url, line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// waitMetric scrapes until series has value want: a counter moves a
// little after the event a test waits for (the relay forwards after the
// receiver may already have shown the message).
func waitMetric(t *testing.T, url, series string, want float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, ok := scrape(t, url)[series]
		if ok && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s = %v (present %v), want %v", url, series, got, ok, want)
		}
		time.Sleep(50 * time.Millisecond) // polling a page: there is no event to wait for
	}
}

// Three room messages and a DM through a relay move each node's counters
// by exactly that much, and go-libp2p's own metrics are on the same page.
func TestMetricsAfterARoomExchange(t *testing.T) {
	r := start(t, "relay", "relay", "--json", "--data", t.TempDir(), "--listen", "/ip4/127.0.0.1/tcp/0", "--metrics", "127.0.0.1:0")
	_, rAddr := r.Ready()
	rURL := r.Event("ready")["metrics"].(string)
	a := start(t, "alice", loopbackArgs(t, "join", "lobby", "--nick", "alice", "--bootstrap", rAddr, "--metrics", "127.0.0.1:0")...)
	aID, _ := a.Ready()
	aURL := a.Event("ready")["metrics"].(string)
	b := start(t, "bob", loopbackArgs(t, "join", "lobby", "--nick", "bob", "--bootstrap", rAddr, "--metrics", "127.0.0.1:0")...)
	bID, _ := b.Ready()
	bURL := b.Event("ready")["metrics"].(string)
	a.Event("peer-joined", "room", "lobby", "peer", bID)
	b.Event("peer-joined", "room", "lobby", "peer", aID)

	for i := range 3 {
		a.Send(fmt.Sprintf("hello %d", i))
	}
	for i := range 3 {
		b.Event("message", "text", fmt.Sprintf("hello %d", i), "from", aID)
	}
	a.Send("/dm " + bID + " psst")
	sent := a.Event("sent", "to", bID)
	a.Event("delivered", "id", sent["id"].(string))

	waitMetric(t, aURL, `parley_room_messages_published_total`, 3)
	waitMetric(t, bURL, `parley_room_messages_received_total{kind="message"}`, 3)
	// A message bob got as history first (caught up from the relay before
	// its live copy came) is shown as backfill: latency is measured for
	// live ones only.
	live := 0
	for _, ev := range b.Snapshot() {
		if ev["event"] == "message" && ev["from"] == aID && ev["backfill"] != true {
			live++
		}
	}
	waitMetric(t, bURL, `parley_room_message_delivery_seconds_count`, float64(live))
	waitMetric(t, bURL, `parley_room_messages_backfilled_total`, float64(3-live))
	waitMetric(t, aURL, `parley_dms_sent_total`, 1)
	waitMetric(t, aURL, `parley_dms_delivered_total`, 1)
	waitMetric(t, bURL, `parley_dms_received_total`, 1)
	waitMetric(t, aURL, `parley_dm_outbox_depth`, 0)
	waitMetric(t, rURL, `parley_relay_messages_forwarded_total{kind="message",room="lobby"}`, 3)
	waitMetric(t, rURL, `parley_relay_rooms_carried`, 1)
	waitMetric(t, rURL, `parley_relay_room_members{room="lobby"}`, 2)

	page := scrape(t, bURL)
	if page[`parley_room_message_delivery_seconds_sum`] > 30 {
		t.Errorf("bob's delivery latency: %vs for %d messages; want seconds at most", page[`parley_room_message_delivery_seconds_sum`], live)
	}
	t.Logf("bob: %d of 3 shown live, delivery latency %.1f ms in all", live, 1000*page[`parley_room_message_delivery_seconds_sum`])
	// Messages that arrive together are stored in one write (group
	// commit), so 3 messages are 1 to 3 timed writes.
	if n := page[`parley_store_write_seconds_count{op="add_room_messages"}`]; n < 1 {
		t.Errorf("bob timed %v room message writes, want at least 1", n)
	}
	if page[`parley_event_subscribers`] < 1 {
		t.Errorf("bob has %v event subscribers, want the JSON front end at least", page[`parley_event_subscribers`])
	}
	var libp2p, holepunch bool
	for series := range page {
		libp2p = libp2p || strings.HasPrefix(series, "libp2p_swarm_")
		holepunch = holepunch || strings.HasPrefix(series, "libp2p_holepunch_")
	}
	if !libp2p {
		t.Errorf("bob's page has no libp2p_swarm_ metrics: go-libp2p's collectors are not on Parley's registry")
	}
	_ = holepunch // only after a punch: not on loopback

	a.CloseAndWait()
	b.CloseAndWait()
	r.Signal(os.Interrupt)
	r.WaitExit()
}
