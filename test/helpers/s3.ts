import path from 'node:path';
import type { TestContext } from 'node:test';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import { tempDir } from './tmp.js';

/** s3rver's built-in account. */
export const S3_KEY = 'S3RVER';
export const S3_SECRET = 'S3RVER';

/** A real S3-compatible server on 127.0.0.1, talked to with the real SDK, path-style. */
export class TestS3 {
  private constructor(
    readonly endpoint: string,
    private readonly client: S3Client,
  ) {}

  static async start(t: TestContext, buckets: string[]): Promise<TestS3> {
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
    const server = new S3rver({
      address: '127.0.0.1',
      port: 0,
      silent: true,
      directory: path.join(tempDir(t), 's3'),
      configureBuckets: buckets.map((name) => ({ name })),
    });
    const { port } = await server.run();
    const endpoint = `http://127.0.0.1:${port}`;
    const client = new S3Client({
      endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: S3_KEY, secretAccessKey: S3_SECRET },
      // Otherwise the SDK's aws-chunked framing ends up stored in s3rver's objects.
      requestChecksumCalculation: 'WHEN_REQUIRED',
    });
    t.after(async () => {
      client.destroy();
      await server.close();
    });
    return new TestS3(endpoint, client);
  }

  async put(bucket: string, key: string, body: Buffer | string): Promise<void> {
    await this.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
  }
}
