package replay_test

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/ordokafka/ordo/pkg/replay"
)

// kafkaExport is what kafka-consumer-groups.sh --reset-offsets --export
// prints for one --group: CsvUtils.CsvRecordNoGroup rows written by
// Jackson's CsvMapper (fields topic, partition, offset; no header; "\n"
// after each row; no quoting, which legal topic names never need),
// concatenated.
const kafkaExport = "orders,0,42\norders,1,17\norders.retry.1,0,0\n"

func TestWriteCSVIsTheKafkaToolsFormat(t *testing.T) {
	rows := []replay.PlanRow{ // out of order: the file is sorted
		{Topic: "orders.retry.1", Partition: 0, Offset: 0},
		{Topic: "orders", Partition: 1, Offset: 17},
		{Topic: "orders", Partition: 0, Offset: 42},
	}
	var b bytes.Buffer
	if err := replay.WriteCSV(&b, rows); err != nil {
		t.Fatal(err)
	}
	if b.String() != kafkaExport {
		t.Errorf("wrote %q, want %q", b.String(), kafkaExport)
	}
	got, err := replay.ReadCSV(strings.NewReader(kafkaExport))
	if err != nil {
		t.Fatal(err)
	}
	want := []replay.PlanRow{rows[2], rows[1], rows[0]}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read %+v, want %+v", got, want)
	}
}

// ReadCSV takes the Kafka tool's multi-group format, CRLF line ends and
// blank lines.
func TestReadCSVForms(t *testing.T) {
	got, err := replay.ReadCSV(strings.NewReader("g,orders,0,5\r\n\r\ng,orders,1,6\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []replay.PlanRow{{Group: "g", Topic: "orders", Partition: 0, Offset: 5}, {Group: "g", Topic: "orders", Partition: 1, Offset: 6}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read %+v, want %+v", got, want)
	}
}

// Every bad line is reported at once, each with its number.
func TestReadCSVErrorsNameTheirLines(t *testing.T) {
	in := "orders,0,5\norders,x,5\nor ders,1,-3\norders,0,9\na,b\n"
	_, err := replay.ReadCSV(strings.NewReader(in))
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{
		`line 2: partition "x" is not a number`,
		`line 3: topic "or ders" has the character ' '`,
		`offset "-3" is not a number >= 0`,
		"line 4: orders/0 is already planned on line 1",
		"line 5: 2 fields, want topic,partition,offset",
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
	if _, err := replay.ReadCSV(strings.NewReader("\n\n")); err == nil || !strings.Contains(err.Error(), "no rows") {
		t.Errorf("empty plan: %v", err)
	}
}

// A plan exported as CSV and read back gives the same plan.
func TestCSVRoundTripsAPlan(t *testing.T) {
	adm, req := resetFixture(t)
	r := req()
	r.Target = replay.Target{Verb: replay.ToOffset, Offset: 7}
	plan, err := replay.PlanReset(ctxT(t), adm, r)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := replay.WriteCSV(&b, plan.Rows()); err != nil {
		t.Fatal(err)
	}
	if b.String() != "t,0,7\nt,1,7\nt,2,7\n" {
		t.Errorf("exported %q", b.String())
	}
	rows, err := replay.ReadCSV(&b)
	if err != nil {
		t.Fatal(err)
	}
	r = req()
	r.Topics = nil
	r.Target = replay.Target{Verb: replay.FromPlan, Plan: rows}
	again, err := replay.PlanReset(ctxT(t), adm, r)
	if err != nil {
		t.Fatal(err)
	}
	for i := range plan.Partitions {
		a, b := plan.Partitions[i], again.Partitions[i]
		a.Warning, b.Warning = "", ""
		if a.Requested != a.New || !reflect.DeepEqual(a, b) {
			t.Errorf("partition %d: planned %+v, from the CSV %+v", i, plan.Partitions[i], again.Partitions[i])
		}
	}
}

// FuzzReadCSV: no input panics, and what reads writes back to itself.
func FuzzReadCSV(f *testing.F) {
	f.Add(kafkaExport)
	f.Add("g,orders,0,5\r\ng,orders,1,6\r\n")
	f.Add("orders,2147483648,1\n")
	f.Add("a,0,9223372036854775807\n\n")
	f.Fuzz(func(t *testing.T, in string) {
		rows, err := replay.ReadCSV(strings.NewReader(in))
		if err != nil {
			return
		}
		for i := range rows {
			rows[i].Group = ""
		}
		var b bytes.Buffer
		if err := replay.WriteCSV(&b, rows); err != nil {
			t.Fatalf("writing what was read: %v", err)
		}
		again, err := replay.ReadCSV(&b)
		if err != nil {
			t.Fatalf("reading what was written (%q): %v", b.String(), err)
		}
		if len(again) != len(rows) {
			t.Fatalf("%d rows, then %d", len(rows), len(again))
		}
	})
}
