-- What `prisma migrate deploy` creates on PostgreSQL for the sample app (docs/SAMPLE_SCHEMA.md):
-- the same Prisma schema with provider = "postgresql". Prisma's PostgreSQL conventions:
-- quoted camelCase, TIMESTAMP(3), BOOLEAN, DOUBLE PRECISION, DECIMAL(65,30), JSONB, SERIAL for
-- autoincrement ids, constraint names <table>_pkey / <table>_<col>_key / <table>_<col>_fkey.
-- Used by the existing-schema-mode tests (loaded into an empty database as is).

-- CreateTable
CREATE TABLE "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
);

-- The PostgreSQL side's own baseline (Prisma cannot reuse the SQLite history: P3019).
INSERT INTO "_prisma_migrations" ("id", "checksum", "finished_at", "migration_name", "applied_steps_count")
VALUES ('5b0c1f52-2d35-4d3c-9d0e-000000000001',
        'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
        '2025-11-25 00:00:00+00', '0_init', 1);

-- CreateTable
CREATE TABLE "users" (
    "id" TEXT NOT NULL,
    "username" TEXT NOT NULL,
    "email" TEXT,
    "passwordHash" TEXT NOT NULL,
    "firstName" TEXT,
    "lastName" TEXT,
    "role" TEXT NOT NULL DEFAULT 'user',
    "isActive" BOOLEAN NOT NULL DEFAULT true,
    "lastLoginAt" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "users_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "organizations" (
    "id" TEXT NOT NULL,
    "code" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "description" TEXT,
    "isActive" BOOLEAN NOT NULL DEFAULT true,
    "settings" JSONB,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "organizations_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "user_organizations" (
    "id" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "organizationId" TEXT NOT NULL,
    "role" TEXT NOT NULL DEFAULT 'member',
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "user_organizations_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ai_providers" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "model" TEXT NOT NULL,
    "apiEndpoint" TEXT,
    "inputCostPer1k" DECIMAL(65,30) NOT NULL DEFAULT 0,
    "outputCostPer1k" DECIMAL(65,30) NOT NULL DEFAULT 0,
    "isEnabled" BOOLEAN NOT NULL DEFAULT true,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "ai_providers_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "organization_ai_configs" (
    "id" TEXT NOT NULL,
    "organizationId" TEXT NOT NULL,
    "primaryProvider" TEXT NOT NULL,
    "encryptedApiKey" TEXT,
    "monthlyBudgetUsd" DECIMAL(65,30),
    "settings" JSONB,
    "isEnabled" BOOLEAN NOT NULL DEFAULT false,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "organization_ai_configs_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ai_usage_logs" (
    "id" SERIAL NOT NULL,
    "userId" TEXT NOT NULL,
    "organizationId" TEXT NOT NULL,
    "provider" TEXT NOT NULL,
    "model" TEXT NOT NULL,
    "queryHash" TEXT,
    "promptTokens" INTEGER NOT NULL DEFAULT 0,
    "completionTokens" INTEGER NOT NULL DEFAULT 0,
    "costUsd" DECIMAL(65,30) NOT NULL DEFAULT 0,
    "latencyMs" INTEGER,
    "success" BOOLEAN NOT NULL DEFAULT true,
    "errorMessage" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ai_usage_logs_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "api_configurations" (
    "id" TEXT NOT NULL,
    "organizationId" TEXT,
    "name" TEXT NOT NULL,
    "provider" TEXT NOT NULL,
    "baseUrl" TEXT NOT NULL,
    "authType" TEXT NOT NULL DEFAULT 'apiKey',
    "encryptedCredentials" TEXT,
    "headers" TEXT,
    "status" TEXT NOT NULL DEFAULT 'untested',
    "isGlobal" BOOLEAN NOT NULL DEFAULT false,
    "lastTestedAt" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "api_configurations_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "organization_api_credentials" (
    "id" TEXT NOT NULL,
    "organizationId" TEXT NOT NULL,
    "apiConfigurationId" TEXT NOT NULL,
    "encryptedApiKey" TEXT NOT NULL,
    "encryptedSecret" TEXT,
    "isActive" BOOLEAN NOT NULL DEFAULT true,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "organization_api_credentials_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "data_source_mappings" (
    "id" TEXT NOT NULL,
    "apiConfigurationId" TEXT NOT NULL,
    "entityType" TEXT NOT NULL,
    "priority" INTEGER NOT NULL DEFAULT 1,
    "isActive" BOOLEAN NOT NULL DEFAULT true,
    "fieldMap" JSONB NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "data_source_mappings_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "field_configurations" (
    "id" TEXT NOT NULL,
    "organizationId" TEXT,
    "name" TEXT NOT NULL,
    "fields" TEXT NOT NULL,
    "isDefault" BOOLEAN NOT NULL DEFAULT false,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "field_configurations_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "pfa_records" (
    "id" TEXT NOT NULL,
    "organizationId" TEXT NOT NULL,
    "pfaId" TEXT NOT NULL,
    "areaSilo" TEXT,
    "category" TEXT,
    "class" TEXT,
    "source" TEXT NOT NULL,
    "dor" TEXT,
    "isActualized" BOOLEAN NOT NULL DEFAULT false,
    "isDiscontinued" BOOLEAN NOT NULL DEFAULT false,
    "isFundsTransferable" BOOLEAN NOT NULL DEFAULT false,
    "monthlyRate" DOUBLE PRECISION,
    "purchasePrice" DECIMAL(65,30),
    "manufacturer" TEXT,
    "model" TEXT,
    "originalStart" TIMESTAMP(3),
    "originalEnd" TIMESTAMP(3),
    "forecastStart" TIMESTAMP(3),
    "forecastEnd" TIMESTAMP(3),
    "actualStart" TIMESTAMP(3),
    "actualEnd" TIMESTAMP(3),
    "syncState" TEXT NOT NULL DEFAULT 'pristine',
    "modifiedAt" TIMESTAMP(3),
    "modifiedBy" TEXT,
    "syncVersion" INTEGER NOT NULL DEFAULT 0,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "pfa_records_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "sync_logs" (
    "id" SERIAL NOT NULL,
    "organizationId" TEXT NOT NULL,
    "syncType" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "recordsProcessed" INTEGER NOT NULL DEFAULT 0,
    "recordsFailed" INTEGER NOT NULL DEFAULT 0,
    "startedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "completedAt" TIMESTAMP(3),
    "errorDetails" JSONB,

    CONSTRAINT "sync_logs_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "users_username_key" ON "users"("username");

-- CreateIndex
CREATE UNIQUE INDEX "users_email_key" ON "users"("email");

-- CreateIndex
CREATE UNIQUE INDEX "organizations_code_key" ON "organizations"("code");

-- CreateIndex
CREATE INDEX "user_organizations_organizationId_idx" ON "user_organizations"("organizationId");

-- CreateIndex
CREATE UNIQUE INDEX "user_organizations_userId_organizationId_key" ON "user_organizations"("userId", "organizationId");

-- CreateIndex
CREATE UNIQUE INDEX "ai_providers_name_key" ON "ai_providers"("name");

-- CreateIndex
CREATE UNIQUE INDEX "organization_ai_configs_organizationId_key" ON "organization_ai_configs"("organizationId");

-- CreateIndex (hand-edited partial index, as in the SQLite migration; boolean literal on PostgreSQL)
CREATE INDEX "ai_usage_logs_queryHash_createdAt_idx" ON "ai_usage_logs"("queryHash", "createdAt" DESC) WHERE "success" = true;

-- CreateIndex
CREATE INDEX "ai_usage_logs_organizationId_createdAt_idx" ON "ai_usage_logs"("organizationId", "createdAt" DESC);

-- CreateIndex
CREATE INDEX "api_configurations_organizationId_idx" ON "api_configurations"("organizationId");

-- CreateIndex
CREATE UNIQUE INDEX "organization_api_credentials_organizationId_apiConfigurationId_key" ON "organization_api_credentials"("organizationId", "apiConfigurationId");

-- CreateIndex
CREATE INDEX "data_source_mappings_apiConfigurationId_idx" ON "data_source_mappings"("apiConfigurationId");

-- CreateIndex
CREATE INDEX "pfa_records_organizationId_areaSilo_category_idx" ON "pfa_records"("organizationId", "areaSilo", "category");

-- CreateIndex
CREATE INDEX "pfa_records_organizationId_forecastStart_forecastEnd_idx" ON "pfa_records"("organizationId", "forecastStart", "forecastEnd");

-- CreateIndex
CREATE INDEX "pfa_records_organizationId_syncState_modifiedAt_idx" ON "pfa_records"("organizationId", "syncState", "modifiedAt");

-- CreateIndex
CREATE UNIQUE INDEX "pfa_records_organizationId_pfaId_key" ON "pfa_records"("organizationId", "pfaId");

-- CreateIndex
CREATE INDEX "sync_logs_organizationId_startedAt_idx" ON "sync_logs"("organizationId", "startedAt");

-- AddForeignKey
ALTER TABLE "user_organizations" ADD CONSTRAINT "user_organizations_userId_fkey" FOREIGN KEY ("userId") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "user_organizations" ADD CONSTRAINT "user_organizations_organizationId_fkey" FOREIGN KEY ("organizationId") REFERENCES "organizations"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "organization_ai_configs" ADD CONSTRAINT "organization_ai_configs_organizationId_fkey" FOREIGN KEY ("organizationId") REFERENCES "organizations"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ai_usage_logs" ADD CONSTRAINT "ai_usage_logs_userId_fkey" FOREIGN KEY ("userId") REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "api_configurations" ADD CONSTRAINT "api_configurations_organizationId_fkey" FOREIGN KEY ("organizationId") REFERENCES "organizations"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "organization_api_credentials" ADD CONSTRAINT "organization_api_credentials_organizationId_fkey" FOREIGN KEY ("organizationId") REFERENCES "organizations"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "organization_api_credentials" ADD CONSTRAINT "organization_api_credentials_apiConfigurationId_fkey" FOREIGN KEY ("apiConfigurationId") REFERENCES "api_configurations"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "data_source_mappings" ADD CONSTRAINT "data_source_mappings_apiConfigurationId_fkey" FOREIGN KEY ("apiConfigurationId") REFERENCES "api_configurations"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "field_configurations" ADD CONSTRAINT "field_configurations_organizationId_fkey" FOREIGN KEY ("organizationId") REFERENCES "organizations"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "pfa_records" ADD CONSTRAINT "pfa_records_organizationId_fkey" FOREIGN KEY ("organizationId") REFERENCES "organizations"("id") ON DELETE CASCADE ON UPDATE CASCADE;
