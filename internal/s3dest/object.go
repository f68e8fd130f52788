package s3dest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/j1ds/j1ds/internal/failpoint"
	"hash/crc32"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/j1ds/j1ds/internal/s3dest/s3bucket"
)

// Object headers: the caller writes gzip-compressed JSON lines.
const (
	ContentType     = "application/x-ndjson"
	ContentEncoding = "gzip"
)

// errClosed is returned by writes to a closed or aborted writer.
var errClosed = errors.New("s3dest: object writer is closed")

// minBuffer is the first allocation of an object's buffer; it then doubles
// up to the part size, so small objects do not cost a whole part.
const minBuffer = 64 << 10

// buffers recycles the buffers of stored objects, up to maxPooledBuffer
// bytes each: allocating, zeroing and growing a fresh one per object was a
// tenth of the exporter's CPU. A buffer is recycled only after its object
// is stored: the request that sent it has been answered, so neither the
// SDK nor the HTTP transport reads it any more (a multipart upload reuses
// its buffer after each stored part the same way).
var buffers sync.Pool

const maxPooledBuffer = 4 << 20

// ObjectWriter writes one object. Bytes written are buffered up to the
// part size; if Close comes first the object is one PutObject, otherwise a
// multipart upload starts and each full part is uploaded as the next byte
// arrives, so memory stays bounded by one part (plus the SDK's needs).
// Every request carries the target's expected bucket owner.
//
// An ObjectWriter is not safe for concurrent use. Its requests use the
// context given to Client.Object.
type ObjectWriter struct {
	c        *Client
	ctx      context.Context
	t        s3bucket.Target
	key      string
	partSize int

	buf      []byte
	uploadID string
	parts    []types.CompletedPart
	requests atomic.Int64

	err      error // sticky: the first failure
	closed   bool
	stored   bool
	closeErr error
}

// ObjectAt is Object for a target as the exporter carries it
// (Target.String).
func (c *Client) ObjectAt(ctx context.Context, target, key string) *ObjectWriter {
	t, _ := s3bucket.ParseTarget(target) // Object reports an invalid target
	return c.Object(ctx, t, key)
}

// Object returns a writer for the object key of t's bucket. It makes no
// request until a part fills or Close is called. An invalid target or key
// makes Write and Close fail with an *Error (INVALID_BUCKET).
func (c *Client) Object(ctx context.Context, t s3bucket.Target, key string) *ObjectWriter {
	w := &ObjectWriter{c: c, t: t, key: key, partSize: int(c.cfg.PartSize)}
	w.ctx = context.WithValue(ctx, requestCounterKey{}, &w.requests)
	if err := t.Validate(); err != nil {
		w.err = invalidTarget(err)
	} else if key == "" || len(key) > 1024 {
		w.err = invalidTarget(fmt.Errorf("object key %q must be 1 to 1024 bytes long", key))
	}
	return w
}

// Write buffers p. When the buffer holds a full part and more bytes come,
// Write uploads that part (starting the multipart upload first if needed),
// so it may block on S3. After a failure every Write returns the same
// *Error; the caller should Abort (Close also aborts and returns it).
func (w *ObjectWriter) Write(p []byte) (int, error) {
	if w.closed {
		return 0, errClosed
	}
	if w.err != nil {
		return 0, w.err
	}
	n := 0
	for len(p) > 0 {
		if len(w.buf) == w.partSize {
			if err := w.flushPart(); err != nil {
				w.err = err
				return n, err
			}
		}
		chunk := p[:min(w.partSize-len(w.buf), len(p))]
		w.grow(len(chunk))
		w.buf = append(w.buf, chunk...)
		n += len(chunk)
		p = p[len(chunk):]
	}
	return n, nil
}

// grow makes room for n more bytes, doubling the buffer up to the part size.
func (w *ObjectWriter) grow(n int) {
	need := len(w.buf) + n
	if need <= cap(w.buf) {
		return
	}
	if w.buf == nil {
		if b, ok := buffers.Get().(*[]byte); ok {
			w.buf = (*b)[:0]
			if need <= cap(w.buf) {
				return
			}
		}
	}
	size := min(max(2*cap(w.buf), need, minBuffer), w.partSize)
	buf := make([]byte, len(w.buf), size)
	copy(buf, w.buf)
	w.buf = buf
}

// Close stores the object: one PutObject when it fits in one part,
// otherwise the last UploadPart and CompleteMultipartUpload. It returns nil
// once the object is stored, or an *Error, after aborting the multipart
// upload (best effort). Calling Close again returns the same result.
func (w *ObjectWriter) Close() error {
	if w.closed {
		if w.stored {
			return nil
		}
		if w.closeErr == nil {
			return errClosed
		}
		return w.closeErr
	}
	w.closed = true
	defer func() {
		if w.stored && cap(w.buf) <= maxPooledBuffer {
			b := w.buf[:0]
			buffers.Put(&b)
		}
		w.buf = nil
	}()
	if w.err != nil {
		w.abort()
		w.closeErr = w.err
		return w.closeErr
	}
	var err error
	if w.uploadID == "" {
		err = w.putObject()
	} else {
		if len(w.buf) > 0 {
			err = w.flushPart()
		}
		if err == nil {
			err = w.complete()
		}
		if err != nil {
			w.abort()
		}
	}
	if err != nil {
		w.closeErr = err
		return err
	}
	w.stored = true
	return nil
}

// Abort gives the object up: buffered bytes are dropped and a started
// multipart upload is aborted (best effort: the customer's bucket policy
// normally lets j1ds only put objects, so a lifecycle rule that aborts
// incomplete multipart uploads is the backstop). Abort after a successful
// Close does nothing; it is safe to call more than once.
func (w *ObjectWriter) Abort() {
	if w.closed {
		return
	}
	w.closed = true
	w.closeErr = errClosed
	w.buf = nil
	w.abort()
}

// Requests returns the number of S3 requests (HTTP attempts, retries
// included) the writer has made, for cost figures.
func (w *ObjectWriter) Requests() int { return int(w.requests.Load()) }

func (w *ObjectWriter) fail(op string, err error) error {
	return w.c.classify(fmt.Errorf("%s %s: %w", op, w.key, err), w.t)
}

func (w *ObjectWriter) putObject() error {
	in := &s3.PutObjectInput{
		Bucket:              aws.String(w.t.Bucket),
		Key:                 aws.String(w.key),
		Body:                bytes.NewReader(w.buf),
		ContentLength:       aws.Int64(int64(len(w.buf))),
		ContentType:         aws.String(ContentType),
		ContentEncoding:     aws.String(ContentEncoding),
		ExpectedBucketOwner: aws.String(w.t.Owner),
		ChecksumAlgorithm:   types.ChecksumAlgorithmCrc32,
		ChecksumCRC32:       crc32Of(w.buf),
	}
	w.c.setSSE(&in.ServerSideEncryption, &in.SSEKMSKeyId)
	if _, err := w.c.s3.PutObject(w.ctx, in); err != nil {
		return w.fail("put object", err)
	}
	w.c.metrics.bytes.Add(float64(len(w.buf)))
	return nil
}

// flushPart uploads the buffer as the next part, starting the multipart
// upload first if needed, and empties the buffer.
func (w *ObjectWriter) flushPart() error {
	if w.uploadID == "" {
		in := &s3.CreateMultipartUploadInput{
			Bucket:              aws.String(w.t.Bucket),
			Key:                 aws.String(w.key),
			ContentType:         aws.String(ContentType),
			ContentEncoding:     aws.String(ContentEncoding),
			ExpectedBucketOwner: aws.String(w.t.Owner),
			ChecksumAlgorithm:   types.ChecksumAlgorithmCrc32,
		}
		w.c.setSSE(&in.ServerSideEncryption, &in.SSEKMSKeyId)
		out, err := w.c.s3.CreateMultipartUpload(w.ctx, in)
		if err != nil {
			return w.fail("create multipart upload", err)
		}
		if aws.ToString(out.UploadId) == "" {
			return w.fail("create multipart upload", errors.New("S3 returned no upload id"))
		}
		w.uploadID = *out.UploadId
	}
	num := int32(len(w.parts) + 1)
	out, err := w.c.s3.UploadPart(w.ctx, &s3.UploadPartInput{
		Bucket:              aws.String(w.t.Bucket),
		Key:                 aws.String(w.key),
		UploadId:            aws.String(w.uploadID),
		PartNumber:          aws.Int32(num),
		Body:                bytes.NewReader(w.buf),
		ContentLength:       aws.Int64(int64(len(w.buf))),
		ExpectedBucketOwner: aws.String(w.t.Owner),
		ChecksumAlgorithm:   types.ChecksumAlgorithmCrc32,
		ChecksumCRC32:       crc32Of(w.buf),
	})
	if err != nil {
		return w.fail(fmt.Sprintf("upload part %d of", num), err)
	}
	w.parts = append(w.parts, types.CompletedPart{
		PartNumber:    aws.Int32(num),
		ETag:          out.ETag,
		ChecksumCRC32: out.ChecksumCRC32,
	})
	w.c.metrics.bytes.Add(float64(len(w.buf)))
	w.buf = w.buf[:0]
	failpoint.Hit("export-after-part")
	return nil
}

func (w *ObjectWriter) complete() error {
	_, err := w.c.s3.CompleteMultipartUpload(w.ctx, &s3.CompleteMultipartUploadInput{
		Bucket:              aws.String(w.t.Bucket),
		Key:                 aws.String(w.key),
		UploadId:            aws.String(w.uploadID),
		MultipartUpload:     &types.CompletedMultipartUpload{Parts: w.parts},
		ExpectedBucketOwner: aws.String(w.t.Owner),
	})
	if err != nil {
		return w.fail("complete multipart upload", err)
	}
	return nil
}

// abort aborts the multipart upload, if one was started, with a context
// that survives the cancellation of the writer's.
func (w *ObjectWriter) abort() {
	if w.uploadID == "" {
		return
	}
	id := w.uploadID
	w.uploadID = ""
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), abortTimeout)
	defer cancel()
	_, err := w.c.s3.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket:              aws.String(w.t.Bucket),
		Key:                 aws.String(w.key),
		UploadId:            aws.String(id),
		ExpectedBucketOwner: aws.String(w.t.Owner),
	})
	switch e := w.c.classify(err, w.t); {
	case e == nil:
		w.c.log.Debug("multipart upload aborted", "bucket", w.t.Bucket, "key", w.key)
	case e.Code == CodeAccessDenied:
		w.c.log.Info("multipart upload left for the bucket's lifecycle rule: abort not allowed",
			"bucket", w.t.Bucket, "key", w.key)
	default:
		w.c.log.Warn("abort multipart upload failed", "bucket", w.t.Bucket, "key", w.key, "code", e.Code, "err", err)
	}
}

// crc32Of returns the CRC32 checksum S3 verifies a body against, as its
// header carries it. Given in advance, the SDK sends it as a header and
// the body as it is; left to the SDK, over TLS it is a trailer and the
// body is re-framed in aws-chunked encoding on the way out, which cost
// the exporter CPU per byte.
func crc32Of(b []byte) *string {
	return aws.String(base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(b))))
}
