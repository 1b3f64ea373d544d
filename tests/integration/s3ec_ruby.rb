# Cross-check peer: the official AWS SDK for Ruby (Debian's ruby-aws-sdk-s3 / ruby-aws-sdk-kms) encrypting
# and decrypting S3 Encryption Client objects, with no S3 server: the S3 client runs with stub_responses
# and a handler just before the (stubbed) send captures every request the encryption client builds.
#
# Usage: ruby s3ec_ruby.rb JOBS.json   -> a JSON array on stdout, one result per job, in order.
# A job:
#   {"op": "encrypt", "client": "v2" | "v1",            v2: Aws::S3::EncryptionV2::Client (security_profile :v2,
#                                                        content_encryption_schema :aes_gcm_no_padding);
#                                                        v1: the legacy Aws::S3::Encryption::Client (kms only)
#    "wrap": "kms_context" | "aes_gcm" | "kms",
#    "plaintext_b64": "...", "key": "obj", "envelope_location": "metadata" | "instruction_file",
#    "kek_b64": "..." (aes_gcm), "kms_key_id": "...", "context": {...} (kms_encryption_context, v2 only),
#    "kms": {"stub": {"plaintext_b64": data key, "blob_b64": CiphertextBlob}}      stubbed KMS, or
#           {"endpoint": url, "access_key", "secret", "session_token", "region"}  a real (signed) KMS client}
#   -> {"ok": true, "body_b64", "metadata": {name without x-amz-meta-: value}, "instruction": body or null,
#       "kms_requests": [{"operation", "key_id", "encryption_context"}]}   (the calls a stubbed KMS received)
#   {"op": "decrypt", "client": "v2", "wrap": ..., "body_b64", "metadata": {...}, "instruction": str or null,
#    "security_profile": "v2" | "v2_and_legacy", "kek_b64" | "kms_key_id" + "kms", "context": {...}}
#   -> {"ok": true, "plaintext_b64"} or {"ok": false, "error": class name, "message"}
require 'aws-sdk-s3'
require 'aws-sdk-kms'
require 'base64'
require 'json'

def kms_client(spec, region)
  if spec['stub']
    kms = Aws::KMS::Client.new(stub_responses: true, region: region)
    s = spec['stub']
    kms.stub_responses(:generate_data_key, key_id: s['key_id'] || 'stub-key',
                       plaintext: Base64.strict_decode64(s['plaintext_b64']),
                       ciphertext_blob: Base64.strict_decode64(s['blob_b64']))
    if s['decrypt_plaintext_b64']
      kms.stub_responses(:decrypt, key_id: s['key_id'] || 'stub-key',
                         plaintext: Base64.strict_decode64(s['decrypt_plaintext_b64']))
    end
    kms
  else
    creds = Aws::Credentials.new(spec['access_key'], spec['secret'], spec['session_token'])
    Aws::KMS::Client.new(endpoint: spec['endpoint'], region: spec['region'] || region, credentials: creds,
                         retry_limit: 0, http_proxy: nil)
  end
end

# A stubbed S3 client whose requests are recorded (method, path, headers, body) before the stubbed send.
def capturing_s3(captured, region, get_responses = nil)
  s3 = Aws::S3::Client.new(stub_responses: true, region: region, force_path_style: true,
                           credentials: Aws::Credentials.new('AKIDRUBYEXAMPLE', 'ruby/secret'))
  s3.handle(step: :sign, priority: 0) do |context|
    req = context.http_request
    body = req.body.read
    req.body.rewind
    captured << { 'method' => req.http_method, 'path' => req.endpoint.path,
                  'headers' => req.headers.to_h, 'body' => body }
    @handler.call(context)
  end
  s3.stub_responses(:get_object, get_responses) if get_responses
  s3
end

def meta_of(headers)
  headers.each_with_object({}) do |(k, v), h|
    h[k.downcase.sub('x-amz-meta-', '')] = v if k.downcase.start_with?('x-amz-meta-')
  end
end

def encryption_client(job, s3, region)
  loc = (job['envelope_location'] || 'metadata').to_sym
  if job['client'] == 'v1'
    raise ArgumentError, 'the v1 cross-check covers the kms wrap only' unless job['wrap'] == 'kms'
    return Aws::S3::Encryption::Client.new(client: s3, kms_key_id: job['kms_key_id'],
                                           kms_client: kms_client(job['kms'], region), envelope_location: loc)
  end
  opts = { client: s3, content_encryption_schema: :aes_gcm_no_padding, envelope_location: loc,
           security_profile: (job['security_profile'] || 'v2').to_sym }
  case job['wrap']
  when 'kms_context', 'kms'   # 'kms': decrypt-only legacy objects (security_profile v2_and_legacy)
    # No kms_key_id on a decrypt job: any-CMK mode. Debian's aws-sdk-kms 1.24 predates Decrypt's KeyId
    # member, which aws-sdk-s3 1.117 sends with a configured kms_key_id ("unexpected value at params[:key_id]").
    opts.update(key_wrap_schema: :kms_context, kms_key_id: job['kms_key_id'] || :kms_allow_decrypt_with_any_cmk,
                kms_client: kms_client(job['kms'], region))
  when 'aes_gcm'
    opts.update(key_wrap_schema: :aes_gcm, encryption_key: Base64.strict_decode64(job['kek_b64']))
  else
    raise ArgumentError, "unknown wrap #{job['wrap']}"
  end
  Aws::S3::EncryptionV2::Client.new(**opts)
end

def run_encrypt(job, region)
  captured = []
  s3 = capturing_s3(captured, region)
  ec = encryption_client(job, s3, region)
  params = { bucket: 'logs', key: job['key'] || 'obj', body: Base64.strict_decode64(job['plaintext_b64']) }
  ctx = job['context']
  params[:kms_encryption_context] = ctx if ctx && job['client'] != 'v1'
  ec.put_object(**params)
  key = params[:key]
  obj = captured.find { |r| r['method'] == 'PUT' && r['path'].end_with?("/#{key}") }
  instr = captured.find { |r| r['method'] == 'PUT' && r['path'].end_with?("/#{key}.instruction") }
  kms_requests = []
  kc = ec.instance_variable_get(:@cipher_provider)&.instance_variable_get(:@kms_client)
  if kc && kc.config.stub_responses
    kms_requests = kc.api_requests.map do |r|
      { 'operation' => r[:operation_name].to_s, 'key_id' => r[:params][:key_id],
        'encryption_context' => r[:params][:encryption_context] }
    end
  end
  { 'ok' => true, 'body_b64' => Base64.strict_encode64(obj['body']), 'metadata' => meta_of(obj['headers']),
    'instruction' => instr && instr['body'], 'instruction_metadata' => instr && meta_of(instr['headers']),
    'kms_requests' => kms_requests }
end

# The stubbed S3 answers GETs as S3 would: the object, its instruction file, or the ranged GET of the
# trailing GCM tag (`Range: bytes=-16`) that the Ruby client makes before decrypting.
def run_decrypt(job, region)
  headers = (job['metadata'] || {}).each_with_object({}) { |(k, v), h| h["x-amz-meta-#{k}"] = v }
  body = Base64.strict_decode64(job['body_b64'])
  gets = []
  answer = lambda do |context|
    key = context.params[:key]
    range = context.params[:range]
    gets << { 'key' => key, 'range' => range }
    if key.end_with?('.instruction')
      next { status_code: 404, headers: {}, body: '' } unless job['instruction']
      next { status_code: 200, headers: { 'content-length' => job['instruction'].bytesize.to_s,
                                          'x-amz-meta-x-amz-crypto-instr-file' => '' }, body: job['instruction'] }
    end
    if range
      m = /\Abytes=-(\d+)\z/.match(range) or raise ArgumentError, "unexpected range #{range}"
      part = body.byteslice([body.bytesize - m[1].to_i, 0].max..)
      next { status_code: 206, headers: { 'content-length' => part.bytesize.to_s,
                                          'content-range' => "bytes #{body.bytesize - part.bytesize}-#{body.bytesize - 1}/#{body.bytesize}" },
             body: part }
    end
    { status_code: 200, headers: headers.merge('content-length' => body.bytesize.to_s), body: body }
  end
  captured = []
  s3 = capturing_s3(captured, region, answer)
  ec = encryption_client(job, s3, region)
  params = { bucket: 'logs', key: job['key'] || 'obj' }
  params[:kms_encryption_context] = job['context'] if job['context']
  params[:kms_allow_decrypt_with_any_cmk] = true if job['kms_key_id'].nil? && job['wrap'] == 'kms_context'
  out = ec.get_object(**params)
  { 'ok' => true, 'plaintext_b64' => Base64.strict_encode64(out.body.read), 'gets' => gets }
end

jobs = JSON.parse(File.read(ARGV.fetch(0)))
region = 'us-east-1'
results = jobs.map do |job|
  begin
    job['op'] == 'decrypt' ? run_decrypt(job, region) : run_encrypt(job, region)
  rescue StandardError => e
    { 'ok' => false, 'error' => e.class.name, 'message' => e.message }
  end
end
puts JSON.generate(results)
