{{ config(alias='orfaos', materialized='view') }}

-- Every deduplicated bronze row that silver excludes because a reference does not resolve,
-- with the reason. A view: always in step with bronze and silver, and free to build.

with

silver_imoveis as (
    select imovel_id from {{ ref('stg_imoveis') }}
),

silver_moradores as (
    select morador_id from {{ ref('stg_moradores') }}
),

silver_transacoes as (
    select transacao_id from {{ ref('stg_transacoes') }}
),

imoveis_bronze as (
    {{ latest_version_by_id(source('bronze', 'imoveis'), 'imovel_id') }}
),

moradores_bronze as (
    {{ latest_version_by_id(source('bronze', 'moradores'), 'morador_id') }}
),

transacoes_bronze as (
    {{ latest_version_by_id(source('bronze', 'transacoes'), 'transacao_id') }}
),

imoveis_orfaos as (
    select
        'imoveis' as entidade,
        imoveis_bronze.imovel_id as registro_id,
        'condominio_inexistente' as motivo,
        imoveis_bronze.condominio_id,
        cast(null as integer) as imovel_id,
        cast(null as integer) as morador_id,
        {{ lineage_columns('imoveis_bronze') }}
    from imoveis_bronze
    left join silver_imoveis
        on imoveis_bronze.imovel_id = silver_imoveis.imovel_id
    where silver_imoveis.imovel_id is null
),

moradores_orfaos as (
    select
        'moradores' as entidade,
        moradores_bronze.morador_id as registro_id,
        'condominio_inexistente' as motivo,
        moradores_bronze.condominio_id,
        cast(null as integer) as imovel_id,
        cast(null as integer) as morador_id,
        {{ lineage_columns('moradores_bronze') }}
    from moradores_bronze
    left join silver_moradores
        on moradores_bronze.morador_id = silver_moradores.morador_id
    where silver_moradores.morador_id is null
),

transacoes_orfas as (
    select
        'transacoes' as entidade,
        transacoes_bronze.transacao_id as registro_id,
        concat_ws(
            ', ',
            case
                when imoveis_bronze.imovel_id is null then 'imovel_inexistente'
                when silver_imoveis.imovel_id is null then 'imovel_excluido'
            end,
            case
                when moradores_bronze.morador_id is null then 'morador_inexistente'
                when silver_moradores.morador_id is null then 'morador_excluido'
            end
        ) as motivo,
        cast(null as integer) as condominio_id,
        transacoes_bronze.imovel_id,
        transacoes_bronze.morador_id,
        {{ lineage_columns('transacoes_bronze') }}
    from transacoes_bronze
    left join silver_transacoes
        on transacoes_bronze.transacao_id = silver_transacoes.transacao_id
    left join imoveis_bronze
        on transacoes_bronze.imovel_id = imoveis_bronze.imovel_id
    left join silver_imoveis
        on transacoes_bronze.imovel_id = silver_imoveis.imovel_id
    left join moradores_bronze
        on transacoes_bronze.morador_id = moradores_bronze.morador_id
    left join silver_moradores
        on transacoes_bronze.morador_id = silver_moradores.morador_id
    where silver_transacoes.transacao_id is null
),

orfaos as (
    select * from imoveis_orfaos
    union all
    select * from moradores_orfaos
    union all
    select * from transacoes_orfas
),

final as (
    select
        {{ as_text('orfaos.entidade') }} as entidade,
        cast(orfaos.registro_id as integer) as registro_id,
        {{ as_text('orfaos.motivo') }} as motivo,
        cast(orfaos.condominio_id as integer) as condominio_id,
        cast(orfaos.imovel_id as integer) as imovel_id,
        cast(orfaos.morador_id as integer) as morador_id,
        orfaos._source_file,
        orfaos._source_line,
        orfaos._load_id,
        orfaos._loaded_at,
        orfaos._repaired
    from orfaos
)

select * from final
