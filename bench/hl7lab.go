package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vitalgate/vitalgate/simulator"
)

// benchHL7Lab measures laboratory results over MLLP with mutual TLS: HL7 v2.5.1 ORU^R01
// blood gas panels as the HL7 LRI has them (simulator.NewBloodGasORU: BloodGasCount
// results, a DiagnosticReport and a Specimen each), every one a new order, each answered AA
// once its Observations, report and specimen are durable, against an MLLP echo of the same
// frames over the same TLS settings. The stored Observation rows are counted in the store.
func (b *benchRun) benchHL7Lab(ctx context.Context) ([]Row, error) {
	devs, err := b.enrolledDevices(ctx)
	if err != nil {
		return nil, err
	}
	devs = b.mllpDevices(devs)
	srv := b.srv
	if srv.mllpAddr == "" {
		return nil, errors.New("the server was started without MLLP")
	}
	unique := func(w int) []byte {
		d := devs[w]
		msg, err := simulator.NewBloodGasORU(d.gen, d.id, d.patient, time.Now(), fmt.Sprintf("L%d-%d", w, b.seq.Add(1)))
		if err != nil {
			panic(err) // device and patient ids are the bench's own
		}
		return msg
	}
	call, closeAll := b.mllpExchange(srv, devs, srv.mllpAddr, true, unique)
	fig, cnt, err := b.loadCounted(ctx, srv, "hl7-lab, unique blood gas messages (Vitalgate)", "msgs", len(devs), call)
	closeAll()
	if err != nil {
		return nil, err
	}
	echoAddr, stopEcho, err := srv.startEcho()
	if err != nil {
		return nil, err
	}
	call, closeAll = b.mllpExchange(srv, devs, echoAddr, false, unique)
	base := b.load(ctx, "hl7-lab baseline (MLLP echo)", "msgs", len(devs), call)
	closeAll()
	stopEcho()

	const bn = "MLLP echo, same TLS"
	stored := storedObsRow("hl7-lab", fig, cnt)
	stored.Metric = fmt.Sprintf("stored laboratory obs/s, messages of %d results (rows counted in the store)", simulator.BloodGasCount)
	rows := []Row{{Scenario: "hl7-lab", Metric: fmt.Sprintf("unique LRI ORU^R01 blood gas messages/s answered AA, %d devices, %d results, 1 report, 1 specimen each",
		len(devs), simulator.BloodGasCount), Unit: "msgs/s", Value: fig.CallRate(), Baseline: base.CallRate(), BaselineName: bn, Note: errorNote(fig)},
		stored}
	return append(rows, latencyRows("hl7-lab", bn, fig, &base, nil)...), nil
}
