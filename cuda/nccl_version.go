package cuda

import "fmt"

// ncclAvgSince is the first NCCL (as NCCL_VERSION_CODE) with the ncclAvg
// reduction.
const ncclAvgSince = 21000

// ncclVersionString decodes NCCL_VERSION_CODE: major*1000+minor*100+patch
// up to 2.8, major*10000+minor*100+patch from 2.9 on.
func ncclVersionString(code int) string {
	if code < 10000 {
		return fmt.Sprintf("%d.%d.%d", code/1000, code%1000/100, code%100)
	}
	return fmt.Sprintf("%d.%d.%d", code/10000, code%10000/100, code%100)
}
