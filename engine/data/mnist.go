package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// MNIST file names inside a dataset root, as LeCun's site and GoMNIST ship them.
const (
	mnistTrainImages = "train-images-idx3-ubyte.gz"
	mnistTrainLabels = "train-labels-idx1-ubyte.gz"
	mnistTestImages  = "t10k-images-idx3-ubyte.gz"
	mnistTestLabels  = "t10k-labels-idx1-ubyte.gz"
)

// FetchHint is what a user runs to get MNIST when it is missing.
const FetchHint = "run `make data` (it downloads MNIST through the Go module proxy) or set dataset.*.root to a folder holding the four IDX .gz files"

// IDX holds a 28×28-style image set in its original bytes; Gather scales to
// [0,1] like the PyTorch reference (x/255, no other normalisation).
type IDX struct {
	rows, cols int
	pixels     []byte
	labels     []byte
}

// LoadMNIST reads the train (train=true) or t10k split from root.
func LoadMNIST(root string, train bool) (*IDX, error) {
	imgName, lblName := mnistTestImages, mnistTestLabels
	if train {
		imgName, lblName = mnistTrainImages, mnistTrainLabels
	}
	imgs, dims, err := readIDX(filepath.Join(root, imgName), 3)
	if err != nil {
		return nil, err
	}
	lbls, ldims, err := readIDX(filepath.Join(root, lblName), 1)
	if err != nil {
		return nil, err
	}
	if dims[0] != ldims[0] {
		return nil, fmt.Errorf("%w: %s has %d images but %s has %d labels", ErrDataset, imgName, dims[0], lblName, ldims[0])
	}
	for i, l := range lbls {
		if l > 9 {
			return nil, fmt.Errorf("%w: %s: label %d at index %d is not a digit", ErrDataset, lblName, l, i)
		}
	}
	return &IDX{rows: dims[1], cols: dims[2], pixels: imgs, labels: lbls}, nil
}

// readIDX decodes a gzipped IDX file of unsigned bytes with ndim dimensions.
func readIDX(path string, ndim int) ([]byte, []int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v; %s", ErrDataset, err, FetchHint)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s is not gzip: %v", ErrDataset, path, err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %v", ErrDataset, path, err)
	}
	return parseIDX(path, raw, ndim)
}

func parseIDX(path string, raw []byte, ndim int) ([]byte, []int, error) {
	hdr := 4 + 4*ndim
	if len(raw) < 4 || !bytes.Equal(raw[:3], []byte{0, 0, 0x08}) || int(raw[3]) != ndim {
		return nil, nil, fmt.Errorf("%w: %s: IDX magic % x is not unsigned-byte with %d dims", ErrDataset, path, raw[:min(len(raw), 4)], ndim)
	}
	if len(raw) < hdr {
		return nil, nil, fmt.Errorf("%w: %s: truncated IDX header", ErrDataset, path)
	}
	dims := make([]int, ndim)
	n := 1
	for i := range dims {
		dims[i] = int(binary.BigEndian.Uint32(raw[4+4*i:]))
		n *= dims[i]
	}
	if len(raw)-hdr != n {
		return nil, nil, fmt.Errorf("%w: %s: header says %v (%d bytes) but %d bytes follow", ErrDataset, path, dims, n, len(raw)-hdr)
	}
	return raw[hdr:], dims, nil
}

// Len is the number of images.
func (m *IDX) Len() int { return len(m.labels) }

// SampleShape is 1×rows×cols.
func (m *IDX) SampleShape() []int { return []int{1, m.rows, m.cols} }

// NumClasses is 10.
func (m *IDX) NumClasses() int { return 10 }

// Gather copies images scaled to [0,1] and their labels.
func (m *IDX) Gather(idx []int, x []float32, y []int32) {
	size := m.rows * m.cols
	for i, j := range idx {
		src := m.pixels[j*size : (j+1)*size]
		dst := x[i*size : (i+1)*size]
		for k, p := range src {
			dst[k] = float32(p) / 255
		}
		y[i] = int32(m.labels[j])
	}
}
