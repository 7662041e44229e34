package health

import "testing"

// BenchmarkCompute: the status of a captured Deployment. A wait evaluates
// every followed object on each watch event, so this bounds its CPU cost.
func BenchmarkCompute(b *testing.B) {
	obj := loadObject(b, "status/deployment-current")
	b.ReportAllocs()
	for b.Loop() {
		if Compute(obj).Status != Current {
			b.Fatal("not Current")
		}
	}
}

// BenchmarkDiagnose: naming the cause of a captured crash-looping rollout
// (three pods and their events).
func BenchmarkDiagnose(b *testing.B) {
	obj, ev := loadCase(b, "diagnose/deployment-crashloop")
	res := Compute(obj)
	b.ReportAllocs()
	for b.Loop() {
		if Diagnose(obj, res, ev, DiagnoseOptions{}).Cause != CrashLoop {
			b.Fatal("cause not named")
		}
	}
}
