package collective

import "unsafe"

// floatBytes views f's memory as bytes without copying: payloads go to and
// from the socket straight out of the caller's buffer.
func floatBytes(f []float32) []byte {
	if len(f) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(f))), 4*len(f))
}

// littleEndian reports the host byte order; the wire is little-endian
// because payloads are raw float32 memory.
func littleEndian() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}

// reduceInto combines src into dst for an operation of type typ; on the
// step that finishes a segment, a mean is scaled there by inv (1/size), once,
// by the segment's owner, whose bits every rank then copies.
func reduceInto(typ frameType, dst, src []float32, finish bool, inv float32) {
	switch {
	case typ == frameMax:
		maxInto(dst, src)
	case typ == frameMean && finish:
		sumScaleInto(dst, src, inv)
	default:
		sumInto(dst, src)
	}
}

// The loops are unrolled by four: the compiler does not vectorise, and the
// unrolled form keeps one bounds check per four elements.

func sumInto(dst, src []float32) {
	src = src[:len(dst)]
	i := 0
	for ; i+4 <= len(dst); i += 4 {
		d, s := dst[i:i+4:i+4], src[i:i+4:i+4]
		d[0] += s[0]
		d[1] += s[1]
		d[2] += s[2]
		d[3] += s[3]
	}
	for ; i < len(dst); i++ {
		dst[i] += src[i]
	}
}

func sumScaleInto(dst, src []float32, k float32) {
	src = src[:len(dst)]
	for i := range dst {
		dst[i] = (dst[i] + src[i]) * k
	}
}

// maxInto propagates NaN, so a diverged replica is noticed everywhere.
func maxInto(dst, src []float32) {
	src = src[:len(dst)]
	for i, s := range src {
		if s > dst[i] || s != s {
			dst[i] = s
		}
	}
}
